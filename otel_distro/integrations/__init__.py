"""What the distro adds on top of the contrib instrumentations, one module per framework.

Each module is imported only when its framework is instrumented, so none of
them makes the framework a dependency of the distro.
"""
