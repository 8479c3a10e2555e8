"""Evaluation: everything measured on labelled questions, apart from the runtime.

`evaluate` (`rag-guard eval`: the gate's figures, answers scored), `metrics` and `answer_quality` (the pure
scores), `questions` (labelled files), `report` (plots and the HTML page), `features` (the judge's hidden
states kept for fitting), `probe_fit` and `calibration_fit` (the pure fits), and `fit_probe` and
`calibrate` (the two commands' workflows). Each is imported from its own module: the plots and the fits
load their libraries only when used.
"""
