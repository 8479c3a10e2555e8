"""Evaluation: everything measured on labelled questions, apart from the runtime.

`evaluate` and `labelled` (`rag-guard eval`: the gate's figures, answers scored), `suite` and `suite_scores`
(`eval-suite`), `metrics` and `answer_scoring` (the pure scores), `questions` (labelled files), `report` (plots
and the HTML page), `probe_states` (the judge's hidden states kept for fitting), `probe_maths` and
`calibration_maths` (the pure fits), and `probe_command` and `calibrate_command` (the `fit-probe` and
`calibrate` workflows). Each is imported from its own module: the plots and the fits load their libraries
(the `study` extra) only when used.
"""
