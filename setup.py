# setuptools needs this file only to pass cffi_modules (not expressible in pyproject.toml) and the
# journal's one hand-written extension (the lean append entry point, journal/_fastappend.c).
from setuptools import Extension, setup

setup(cffi_modules=["journal/_build.py:ffibuilder", "mm_core/_build_fastmd.py:ffibuilder",
                     "reports/_build_kernels.py:orderjoin_ffi", "reports/_build_kernels.py:numtext_ffi",
                     "audit/_build_fastcap.py:ffibuilder"],
      ext_modules=[Extension("journal._fastappend", ["journal/_fastappend.c"], include_dirs=["journal"],
                             extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter"])])
