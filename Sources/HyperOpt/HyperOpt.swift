// HyperOpt module.
