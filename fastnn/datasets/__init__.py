"""Small datasets for examples and tests: 2-D toy generators and the 8x8 digits."""
from fastnn.datasets._digits import load_digits
from fastnn.datasets._generators import make_circles, make_moons, make_spirals
from fastnn.datasets._split import train_test_split

__all__ = ["make_circles", "make_moons", "make_spirals", "load_digits", "train_test_split"]
