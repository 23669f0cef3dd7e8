# ONNX Runtime's C/C++ headers for edgefer's custom-op library.
#
# The onnxruntime Python wheel ships no headers. Debian trixie's `libonnxruntime-dev` (~85 KB) has them, so the
# build downloads that .deb with apt-get using a PRIVATE sources list, state and cache inside the build tree
# (-o Dir::Etc::SourceList=... -o Dir::State::Lists=... -o Dir::Cache=...): the system's apt sources, lists and
# cache are never touched, and nothing is installed. The package is unpacked (dpkg-deb -x, or CMake's own tar
# where dpkg-deb is missing) into the build tree and reused by later configures.
#
# edgefer_onnxruntime_headers(<out_var>) sets <out_var> to the directory holding onnxruntime_c_api.h, or to ""
# with a clear message when the headers cannot be had (offline, no apt-get). Inputs:
#   EDGEFER_ONNXRUNTIME_INCLUDE_DIR  use these headers instead (a directory with onnxruntime_c_api.h)
#   EDGEFER_ONNXRUNTIME_DEB_SUITE    Debian suite to fetch from (default trixie)
#   EDGEFER_ONNXRUNTIME_DEB_MIRROR   Debian mirror (default http://deb.debian.org/debian)
#   EDGEFER_ORTOPS_REQUIRED          fail the configure (instead of skipping the library) when they are missing
# It also sets EDGEFER_ORT_API_VERSION (ORT_API_VERSION of the headers) in the caller's scope.

set(EDGEFER_ONNXRUNTIME_INCLUDE_DIR "" CACHE PATH "ONNX Runtime headers to use instead of fetching them")
set(EDGEFER_ONNXRUNTIME_DEB_SUITE "trixie" CACHE STRING "Debian suite providing libonnxruntime-dev")
set(EDGEFER_ONNXRUNTIME_DEB_MIRROR "http://deb.debian.org/debian" CACHE STRING "Debian mirror for libonnxruntime-dev")
option(EDGEFER_ORTOPS_REQUIRED "Fail when ONNX Runtime's headers cannot be had, instead of skipping libedgefer_ortops" OFF)

function(_edgefer_ort_api_version include_dir out_var)
  file(STRINGS "${include_dir}/onnxruntime_c_api.h" line REGEX "^#define ORT_API_VERSION [0-9]+")
  string(REGEX REPLACE "^#define ORT_API_VERSION ([0-9]+).*" "\\1" version "${line}")
  set(${out_var} "${version}" PARENT_SCOPE)
endfunction()

function(edgefer_onnxruntime_headers out_var)
  set(${out_var} "" PARENT_SCOPE)
  set(include_dir "")
  if(EDGEFER_ONNXRUNTIME_INCLUDE_DIR)
    if(NOT EXISTS "${EDGEFER_ONNXRUNTIME_INCLUDE_DIR}/onnxruntime_c_api.h")
      message(FATAL_ERROR "EDGEFER_ONNXRUNTIME_INCLUDE_DIR=${EDGEFER_ONNXRUNTIME_INCLUDE_DIR} has no onnxruntime_c_api.h")
    endif()
    set(include_dir "${EDGEFER_ONNXRUNTIME_INCLUDE_DIR}")
  else()
    set(root "${CMAKE_BINARY_DIR}/_deps/onnxruntime-headers")
    set(unpacked "${root}/pkg/usr/include/onnxruntime")
    if(NOT EXISTS "${unpacked}/onnxruntime_c_api.h")
      _edgefer_fetch_onnxruntime_deb("${root}" ok reason)
      if(NOT ok)
        if(EDGEFER_ORTOPS_REQUIRED)
          set(level FATAL_ERROR)
        else()
          set(level WARNING)
        endif()
        message(${level}
          "edgefer: ONNX Runtime headers unavailable (${reason}); the custom-op library libedgefer_ortops will NOT "
          "be built. Connect to a Debian mirror and re-run the build, or pass "
          "-DEDGEFER_ONNXRUNTIME_INCLUDE_DIR=<dir with onnxruntime_c_api.h>.")
        return()
      endif()
    endif()
    set(include_dir "${unpacked}")
  endif()
  _edgefer_ort_api_version("${include_dir}" api)
  if(NOT api)
    message(WARNING "edgefer: ${include_dir}/onnxruntime_c_api.h defines no ORT_API_VERSION; not building libedgefer_ortops")
    return()
  endif()
  _edgefer_check_runtime_version("${api}")
  message(STATUS "edgefer: ONNX Runtime headers ${include_dir} (C API version ${api})")
  set(EDGEFER_ORT_API_VERSION "${api}" PARENT_SCOPE)
  set(${out_var} "${include_dir}" PARENT_SCOPE)
endfunction()

# Download libonnxruntime-dev with a private apt configuration under <root> and unpack it into <root>/pkg.
function(_edgefer_fetch_onnxruntime_deb root ok_var reason_var)
  set(${ok_var} FALSE PARENT_SCOPE)
  find_program(EDGEFER_APT_GET apt-get)
  if(NOT EDGEFER_APT_GET)
    set(${reason_var} "apt-get not found: this is not a Debian/Ubuntu system" PARENT_SCOPE)
    return()
  endif()
  set(apt "${root}/apt")
  file(MAKE_DIRECTORY "${apt}/lists/partial" "${apt}/cache/archives/partial" "${root}/download")
  set(keyring "/usr/share/keyrings/debian-archive-keyring.gpg")
  if(EXISTS "${keyring}")
    set(signed "[signed-by=${keyring}] ")
  else()
    set(signed "")
  endif()
  file(WRITE "${apt}/sources.list"
       "deb ${signed}${EDGEFER_ONNXRUNTIME_DEB_MIRROR} ${EDGEFER_ONNXRUNTIME_DEB_SUITE} main\n")
  set(apt_opts
      -o "Dir::Etc::SourceList=${apt}/sources.list"
      -o "Dir::Etc::SourceParts=/dev/null"
      -o "Dir::State::Lists=${apt}/lists"
      -o "Dir::Cache=${apt}/cache"
      -o "Debug::NoLocking=1"
      -o "APT::Sandbox::User=root"
      -o "Acquire::Retries=1"
      -o "Acquire::http::Timeout=20")
  message(STATUS "edgefer: fetching libonnxruntime-dev from ${EDGEFER_ONNXRUNTIME_DEB_MIRROR} "
                 "${EDGEFER_ONNXRUNTIME_DEB_SUITE} (private apt lists in ${apt})")
  execute_process(COMMAND "${EDGEFER_APT_GET}" ${apt_opts} -q update
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 300)
  # apt-get update exits 0 even when a source failed; a failed fetch shows up as "W:"/"E:" lines.
  if(NOT rc EQUAL 0 OR err MATCHES "(^|\n)(E|W): Failed to fetch|Could not resolve|Temporary failure")
    string(STRIP "${err}" err)
    set(${reason_var} "apt-get update against ${EDGEFER_ONNXRUNTIME_DEB_MIRROR} failed: ${err}" PARENT_SCOPE)
    return()
  endif()
  execute_process(COMMAND "${EDGEFER_APT_GET}" ${apt_opts} -q download libonnxruntime-dev
                  WORKING_DIRECTORY "${root}/download"
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 300)
  file(GLOB debs "${root}/download/libonnxruntime-dev_*.deb")
  if(NOT rc EQUAL 0 OR NOT debs)
    string(STRIP "${err}" err)
    set(${reason_var} "apt-get download libonnxruntime-dev failed: ${err}" PARENT_SCOPE)
    return()
  endif()
  list(GET debs 0 deb)
  file(REMOVE_RECURSE "${root}/pkg")
  file(MAKE_DIRECTORY "${root}/pkg")
  find_program(EDGEFER_DPKG_DEB dpkg-deb)
  if(EDGEFER_DPKG_DEB)
    execute_process(COMMAND "${EDGEFER_DPKG_DEB}" -x "${deb}" "${root}/pkg" RESULT_VARIABLE rc ERROR_VARIABLE err)
  else()  # a .deb is an ar archive holding data.tar.*; CMake's tar reads both
    file(MAKE_DIRECTORY "${root}/ar")
    execute_process(COMMAND "${CMAKE_COMMAND}" -E tar xf "${deb}" WORKING_DIRECTORY "${root}/ar"
                    RESULT_VARIABLE rc ERROR_VARIABLE err)
    file(GLOB data "${root}/ar/data.tar.*")
    if(rc EQUAL 0 AND data)
      execute_process(COMMAND "${CMAKE_COMMAND}" -E tar xf "${data}" WORKING_DIRECTORY "${root}/pkg"
                      RESULT_VARIABLE rc ERROR_VARIABLE err)
    endif()
  endif()
  if(NOT rc EQUAL 0 OR NOT EXISTS "${root}/pkg/usr/include/onnxruntime/onnxruntime_c_api.h")
    set(${reason_var} "unpacking ${deb} failed: ${err}" PARENT_SCOPE)
    return()
  endif()
  message(STATUS "edgefer: unpacked ${deb}")
  set(${ok_var} TRUE PARENT_SCOPE)
endfunction()

# Warn when the onnxruntime installed for the build's Python is older than the headers' C API version: the
# library would then refuse to register (it asks the runtime for ORT_API_VERSION). ORT release 1.x serves C API
# versions 1..x.
function(_edgefer_check_runtime_version api)
  if(NOT Python_EXECUTABLE)
    find_package(Python COMPONENTS Interpreter QUIET)
  endif()
  if(NOT Python_EXECUTABLE)
    return()
  endif()
  execute_process(COMMAND "${Python_EXECUTABLE}" -c "import onnxruntime; print(onnxruntime.__version__)"
                  RESULT_VARIABLE rc OUTPUT_VARIABLE version ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT rc EQUAL 0)
    message(STATUS "edgefer: onnxruntime is not importable by ${Python_EXECUTABLE}; cannot compare versions")
    return()
  endif()
  string(REGEX MATCH "^1\\.([0-9]+)" _ "${version}")
  if(CMAKE_MATCH_1 AND CMAKE_MATCH_1 LESS api)
    message(WARNING "edgefer: onnxruntime ${version} serves C API versions up to ${CMAKE_MATCH_1}, older than the "
                    "headers' ${api}; libedgefer_ortops will not register with it. Upgrade onnxruntime.")
  else()
    message(STATUS "edgefer: onnxruntime ${version} serves C API version ${api} of the headers")
  endif()
endfunction()
