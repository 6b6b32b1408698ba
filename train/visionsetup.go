package train

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/slabml/slab/data"
	"github.com/slabml/slab/models"
)

// VisionSpec is what a vision training run starts from: a resolved model
// config and recipe, an image data set, and optionally the checkpoint it
// continues (ReadResume).
type VisionSpec struct {
	Family                *models.Family
	Model                 models.Config
	Recipe                Config
	Data, DataDir         string // data set name and directory ("" = installed)
	LimitTrain, LimitTest int    // first N images of each split (0 = all)
	// Extra is the "data" metadata to save; Resume's when continuing.
	Extra      map[string]string
	Resume     *Resumed
	ResumePath string
}

// VisionSetup is a vision run ready to go.
type VisionSetup struct {
	Model       models.Classifier
	Train, Test Dataset
	Trainer     *Trainer
}

// OpenImages opens a split (train or test) of a labelled image data set
// from dir ("" = its installed location), truncated to its first limit
// images (0 = all); a failure is a *models.InputError for "data".
func OpenImages(name, dir, split string, limit int) (Dataset, error) {
	if err := checkImages(name, dir, split); err != nil {
		return nil, err
	}
	ds, err := data.LoadDir(name, split, dir)
	if err != nil {
		return nil, inputErr("data", "%v", err)
	}
	if ds.Len() == 0 { // found before the first step, not after an epoch
		return nil, inputErr("data", "the %s split of %s holds no images", split, name)
	}
	return ds.Subset(limit), nil
}

// Check reports what NewVisionSetup would refuse without loading anything
// (the recipe, the data set's name and files), so that a command refuses
// it before claiming an output directory.
func (s VisionSpec) Check() error {
	if err := s.Recipe.Validate(); err != nil {
		return inputErr(strings.Fields(err.Error())[0], "%v", err)
	}
	if err := models.CheckMemory(fmt.Sprintf("training batch %d", s.Recipe.Batch), s.Model, max(s.Recipe.Batch, s.Recipe.EvalBatch/2), true); err != nil {
		return inputErr("batch", "%v", err)
	}
	for _, split := range []string{"train", "test"} {
		if err := checkImages(s.Data, s.DataDir, split); err != nil {
			return err
		}
	}
	return nil
}

// checkImages is data.CheckDir blaming "data-dir" for a directory that is
// not one, "data" for the rest.
func checkImages(name, dir, split string) error {
	if st, err := os.Stat(dir); dir != "" && (err != nil || !st.IsDir()) {
		if err == nil {
			err = fmt.Errorf("%s is not a directory", dir)
		}
		return inputErr("data-dir", "%v", err)
	}
	if err := data.CheckDir(name, split, dir); err != nil {
		return inputErr("data", "%v", err)
	}
	return nil
}

// NewVisionSetup opens the data, builds the classifier and its trainer, and
// restores s.Resume into it. Errors about an input are *models.InputError
// values naming it as slab train's flags do (data, name for the model,
// resume).
func NewVisionSetup(s VisionSpec) (*VisionSetup, error) {
	if err := s.Check(); err != nil {
		return nil, err
	}
	trainSet, err := OpenImages(s.Data, s.DataDir, "train", s.LimitTrain)
	if err != nil {
		return nil, err
	}
	testSet, err := OpenImages(s.Data, s.DataDir, "test", s.LimitTest)
	if err != nil {
		return nil, err
	}
	mm, err := models.Build(s.Family, s.Model, s.Recipe.Seed)
	if err != nil {
		return nil, err
	}
	m, ok := mm.(models.Classifier)
	if !ok {
		return nil, inputErr("name", "%s (%s family) is not an image classifier", models.ConfigName(s.Model), s.Family.Name)
	}
	if err := CheckFits(trainSet, m, s.Data); err != nil {
		return nil, inputErr("data", "%v", err)
	}
	if n := s.Extra["train_images"]; s.Resume != nil && n != "" && n != fmt.Sprint(trainSet.Len()) {
		return nil, inputErr("resume", "%s was trained on %s %s images, but %s now has %d: resume with the same --data-dir", s.ResumePath, n, s.Data, s.Data, trainSet.Len())
	}
	s.Extra["train_images"] = fmt.Sprint(trainSet.Len())
	tr, err := NewTrainer(s.Recipe, m, trainSet, testSet)
	if err != nil {
		return nil, err
	}
	if s.Resume != nil {
		if err := tr.Restore(s.Resume.File, s.ResumePath); err != nil {
			return nil, inputErr("resume", "%v", err)
		}
	}
	extraJSON, _ := json.Marshal(s.Extra)
	tr.Meta = map[string]string{"data": string(extraJSON)}
	return &VisionSetup{Model: m, Train: trainSet, Test: testSet, Trainer: tr}, nil
}
