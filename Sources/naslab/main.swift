print("naslab: under construction")
