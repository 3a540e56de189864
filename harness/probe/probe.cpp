// placeholder: the C++ probe
