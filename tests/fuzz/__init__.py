"""The fuzzing campaign of fastnn's readers: ``python -m tests.fuzz --minutes N``.

Targets (`tests.fuzz.targets`): ``load_model``, ``load_engine`` and the command line's
CSV and npz readers; seeds (`tests.fuzz.corpus`) are valid files made on the fly; the
mutator (`tests.fuzz.mutator`) edits the safetensors header and data structurally.
Each target runs in its own process under atheris (coverage-guided, libFuzzer).
"""
