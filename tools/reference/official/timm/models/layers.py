# Minimal stand-ins for the three timm helpers the official SLAB models import (eval timing only).
import collections.abc, torch, torch.nn as nn
class DropPath(nn.Module):
    def __init__(self, p=0.):
        super().__init__()
    def forward(self, x):
        return x
def to_2tuple(x):
    return tuple(x) if isinstance(x, collections.abc.Iterable) else (x, x)
def trunc_normal_(t, mean=0., std=1., a=-2., b=2.):
    return nn.init.trunc_normal_(t, mean, std, a, b)
