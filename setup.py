# setuptools needs this file only to pass cffi_modules (not expressible in pyproject.toml).
from setuptools import setup

setup(cffi_modules=["journal/_build.py:ffibuilder", "mm_core/_build_fastmd.py:ffibuilder",
                     "reports/_build_kernels.py:orderjoin_ffi", "reports/_build_kernels.py:numtext_ffi"])
