"""Order of the examples in the gallery (sphinx-gallery ``within_subsection_order``).

From a first model to customisation; files not listed come last, by name.
"""

ORDER = (
    "plot_quick_start.py",
    "plot_compare_sklearn.py",
    "plot_grid_search.py",
    "plot_prune_ratio_curves.py",
    "plot_choosing_the_size.py",
    "plot_reward_estimates.py",
    "plot_prune_cnn.py",
    "plot_custom_policy.py",
)


class ExampleOrder:
    """Sort key: position in :data:`ORDER`, then file name."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        position = ORDER.index(filename) if filename in ORDER else len(ORDER)
        return (position, filename)

    def __repr__(self):
        return f"<{type(self).__name__}>"
