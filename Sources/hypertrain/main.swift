print("hypertrain")
