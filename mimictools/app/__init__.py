"""Application layer: the workflows the CLI runs (run folders, train/eval/bench/doctor/fk-check, stability probe).

Each module composes the library layers above it (motion, character, engines, tasks, rl, eval) into one job;
`mimictools.cli` parses options and prints, and calls these. See docs/architecture.md for the layer rules.
"""
