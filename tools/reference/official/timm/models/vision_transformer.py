def _cfg(url='', **kwargs):
    return {'url': url, **kwargs}
