"""Video analytics: sources, ONNX detector, tracker, counting, occupancy, seals, tamper, belt."""
