print("sae-run: arrives with the nanochat issue")
