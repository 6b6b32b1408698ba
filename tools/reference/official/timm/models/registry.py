def register_model(f):
    return f
