# PSS_HARDENING (ON by default): optimized builds (Release, RelWithDebInfo, MinSizeRel) use
# Debian's hardening flags, as packages built by dpkg-buildpackage get them: _FORTIFY_SOURCE,
# -fstack-protector-strong, format-security errors, RELRO with BIND_NOW, and a PIE executable.
# The flags come from `dpkg-buildflags` (with hardening=+all) when it is installed (dpkg-dev);
# otherwise from the same list written here. Only the hardening flags are taken: the build
# type keeps its own -O and -g. Debug, sanitizer and fuzzing builds are left alone
# (_FORTIFY_SOURCE needs optimization, and the sanitizers bring their own checks).
option(PSS_HARDENING "Build optimized builds with Debian's hardening flags" ON)

set(PSS_HARDENING_COMPILE_FLAGS "")
set(PSS_HARDENING_LINK_FLAGS "")
string(TOUPPER "${CMAKE_BUILD_TYPE}" _pss_build_type)
if(PSS_HARDENING AND NOT PSS_SANITIZE AND NOT PSS_FUZZ
    AND _pss_build_type MATCHES "^(RELEASE|RELWITHDEBINFO|MINSIZEREL)$")
  find_program(PSS_DPKG_BUILDFLAGS dpkg-buildflags)
  set(_pss_cpp "-Wdate-time -D_FORTIFY_SOURCE=2")
  set(_pss_c "-fstack-protector-strong -Wformat -Werror=format-security")
  set(_pss_ld "-Wl,-z,relro -Wl,-z,now")
  if(PSS_DPKG_BUILDFLAGS)
    foreach(_kind CPPFLAGS CFLAGS LDFLAGS)
      execute_process(COMMAND ${CMAKE_COMMAND} -E env DEB_BUILD_MAINT_OPTIONS=hardening=+all
          ${PSS_DPKG_BUILDFLAGS} --get ${_kind}
        OUTPUT_VARIABLE _pss_out OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _pss_rc)
      if(_pss_rc EQUAL 0)
        if(_kind STREQUAL CPPFLAGS)
          set(_pss_cpp "${_pss_out}")
        elseif(_kind STREQUAL CFLAGS)
          set(_pss_c "${_pss_out}")
        else()
          set(_pss_ld "${_pss_out}")
        endif()
      endif()
    endforeach()
  endif()
  separate_arguments(_pss_all UNIX_COMMAND "${_pss_cpp} ${_pss_c}")
  foreach(_flag IN LISTS _pss_all)
    # The build type decides optimization and debug info; file-prefix maps name the build path.
    if(NOT _flag MATCHES "^-(O.*|g.*|ffile-prefix-map=.*|fdebug-prefix-map=.*)$")
      list(APPEND PSS_HARDENING_COMPILE_FLAGS ${_flag})
    endif()
  endforeach()
  separate_arguments(PSS_HARDENING_LINK_FLAGS UNIX_COMMAND "${_pss_ld}")
  add_compile_options(${PSS_HARDENING_COMPILE_FLAGS})
  add_link_options(${PSS_HARDENING_LINK_FLAGS})
  # PIE: -fPIE for every object, -pie for the executable.
  include(CheckPIESupported)
  check_pie_supported()
  set(CMAKE_POSITION_INDEPENDENT_CODE ON)
  message(STATUS "Hardening: ${PSS_HARDENING_COMPILE_FLAGS} ${PSS_HARDENING_LINK_FLAGS} PIE")
endif()
