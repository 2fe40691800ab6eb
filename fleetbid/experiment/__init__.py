"""`fleetbid experiment paper`: reproduce the fleet paper's evaluation, side by side."""
