print("naslab-bench: under construction")
