print("zebra")
