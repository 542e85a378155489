"""Backbones, reward-model loading/saving and heads."""
