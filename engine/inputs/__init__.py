"""Where frames come from: a folder as an archive (order, camera), a video, raw frames on stdin; one image
file, one PDS3 product; what a frame says about itself; the archive's brightness stretch."""
