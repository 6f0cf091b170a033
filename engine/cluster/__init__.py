"""Past one machine: an archive cut into chunks rendered on Ray and joined, and the merged report."""
