import torch.nn as nn
from einops import rearrange
class Rearrange(nn.Module):
    def __init__(self, pattern, **k):
        super().__init__(); self.pattern, self.k = pattern, k
    def forward(self, x):
        return rearrange(x, self.pattern)
