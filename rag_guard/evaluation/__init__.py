"""Evaluation: everything measured on labelled questions, apart from the runtime.

`evaluate` and `labelled` (`rag-guard eval`: the gate's figures, answers scored), `metrics` and
`answer_scoring` (the pure scores), `questions` (labelled files), `report` (plots and the HTML page),
`probe_states` (the judge's hidden states kept for fitting), `probe_fit` and `calibration_fit` (the pure
fits), and `fit_probe` and `calibrate` (the two commands' workflows). Each is imported from its own module:
the plots and the fits load their libraries only when used.
"""
