"""Qt-free unit analysis: what each unit of a recurrent model does, on texts of any length.

    stream      chunked forward with carried state (the bounded-memory reader every job uses)
    hypothesis  LSTMVis hypothesis selection and matches (Strobelt et al., IEEE TVCG 2018)
    features    features of text positions (quotes, bracket depth, line position, ...)
    probe       rank units by correlation / ROC AUC with a feature
    saturation  fraction of steps each gate is < 0.1 or > 0.9 (Karpathy et al. 2015)
    intervene   clamp, zero or scale a unit during a run; loss change; paired samples
    strip       per-character loss and top-k predictions
"""
