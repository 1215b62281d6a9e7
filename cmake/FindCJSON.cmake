# Finds cJSON (Debian: libcjson-dev). Defines the imported target CJSON::CJSON.
find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  pkg_check_modules(PC_CJSON QUIET libcjson)
endif()
find_path(CJSON_INCLUDE_DIR NAMES cjson/cJSON.h HINTS ${PC_CJSON_INCLUDE_DIRS})
find_library(CJSON_LIBRARY NAMES cjson HINTS ${PC_CJSON_LIBRARY_DIRS})
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(CJSON REQUIRED_VARS CJSON_LIBRARY CJSON_INCLUDE_DIR
  VERSION_VAR PC_CJSON_VERSION)
if(CJSON_FOUND AND NOT TARGET CJSON::CJSON)
  add_library(CJSON::CJSON UNKNOWN IMPORTED)
  set_target_properties(CJSON::CJSON PROPERTIES IMPORTED_LOCATION "${CJSON_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${CJSON_INCLUDE_DIR}")
endif()
mark_as_advanced(CJSON_INCLUDE_DIR CJSON_LIBRARY)
