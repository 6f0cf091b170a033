"""oppy-stream's training: dataset preparation, tf.data input, architectures, fitting and evaluation.

Uses the engine's LAB kernels so that training and serving see the same colours.
"""
