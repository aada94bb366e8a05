"""Scores: the balanced-accuracy `evaluate` module, scoring predictions, evaluation reports and choosing ensemble
members by their validation scores."""
