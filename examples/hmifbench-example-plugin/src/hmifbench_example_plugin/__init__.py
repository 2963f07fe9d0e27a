"""An example out-of-tree fusion method for hmifbench (see README.md).

Importing this package must stay light (numpy-free even): the suite imports it to read the
method's metadata when it lists methods and builds the workflow.
"""

from hmifbench_example_plugin.method import MSIRegression

__all__ = ["MSIRegression"]
__version__ = "0.1.0"
