"""What is drawn over frames: captions, the contact sheet, and the text they use."""
