# The six einops patterns the official SLAB models use, as reshapes/permutes (eval timing only).
def rearrange(x, pattern, **k):
    p = ' '.join(pattern.split())
    if p == 'b n (h c) -> (b h) n c':
        b, n, hc = x.shape; h = k['h']
        return x.reshape(b, n, h, hc // h).permute(0, 2, 1, 3).reshape(b * h, n, hc // h)
    if p == '(b h) n c -> b n (h c)':
        bh, n, c = x.shape; h = k['h']
        return x.reshape(bh // h, h, n, c).permute(0, 2, 1, 3).reshape(bh // h, n, h * c)
    if p in ('b (w h) c -> b c w h', 'b (h w) c -> b c h w'):
        b, n, c = x.shape; a = list(k.values())
        return x.reshape(b, a[0], a[1], c).permute(0, 3, 1, 2)
    if p in ('b c w h -> b (w h) c', 'b c h w -> b (h w) c'):
        b, c, s0, s1 = x.shape
        return x.permute(0, 2, 3, 1).reshape(b, s0 * s1, c)
    raise NotImplementedError(pattern)
