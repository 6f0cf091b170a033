"""Where colour frames go: video streamed by PyAV, raw RGB, PNGs; the encoders; when each frame is shown; the
one output-path policy and write-then-rename."""
