# Where an edgefer shared library lands (the one rule for _C, libedgefer_ortops and libedgefer_tensorrt_plugins):
# under scikit-build-core (`pip install .`, `pip install -e .`) it is installed into the wheel's edgefer/ package;
# a plain CMake build writes it into EDGEFER_DEV_OUTPUT_DIR (the source tree's edgefer/ by default), where
# `PYTHONPATH=<repo>` finds it.
include_guard(GLOBAL)

function(edgefer_place_library target)
  if(SKBUILD)
    install(TARGETS ${target} LIBRARY DESTINATION edgefer RUNTIME DESTINATION edgefer)
  else()
    set_target_properties(${target} PROPERTIES
      LIBRARY_OUTPUT_DIRECTORY "${EDGEFER_DEV_OUTPUT_DIR}"
      RUNTIME_OUTPUT_DIRECTORY "${EDGEFER_DEV_OUTPUT_DIR}")
  endif()
endfunction()
