def load_pretrained(*a, **k):
    raise NotImplementedError
