# SPDX-License-Identifier: MIT
# Debugger support (docs/DEBUGGING.md): the gdb extension, the valgrind
# suppressions and the man pages are installed; their tests run when the
# tool is present. Included from CMakeLists.txt.

install(FILES "${CMAKE_CURRENT_SOURCE_DIR}/tools/gdb/leash-gdb.py"
              "${CMAKE_CURRENT_SOURCE_DIR}/tools/valgrind/leash.supp"
        DESTINATION "${CMAKE_INSTALL_DATADIR}/leash")
file(GLOB _leash_man1 "${CMAKE_CURRENT_SOURCE_DIR}/man/*.1")
file(GLOB _leash_man3 "${CMAKE_CURRENT_SOURCE_DIR}/man/*.3")
if(_leash_man1)
  install(FILES ${_leash_man1} DESTINATION "${CMAKE_INSTALL_MANDIR}/man1")
endif()
if(_leash_man3)
  install(FILES ${_leash_man3} DESTINATION "${CMAKE_INSTALL_MANDIR}/man3")
endif()

if(LEASH_BUILD_TESTS)
  find_program(LEASH_GDB gdb)
  find_program(LEASH_VALGRIND valgrind)
  find_program(LEASH_GROFF groff)
  set(_dbg "${CMAKE_CURRENT_SOURCE_DIR}/tests/debug")

  if(LEASH_GDB AND TARGET testprog_gdb_parked)
    add_test(NAME test_gdb
      COMMAND sh "${_dbg}/gdb.sh" "${LEASH_GDB}"
              "$<TARGET_FILE:testprog_gdb_parked>"
              "${CMAKE_CURRENT_SOURCE_DIR}/tools/gdb/leash-gdb.py"
              "${CMAKE_CURRENT_SOURCE_DIR}/tests/progs/gdb_parked.c")
    set_tests_properties(test_gdb PROPERTIES TIMEOUT 150 SKIP_RETURN_CODE 77
                         LABELS unit)
  endif()

  # Not in a clang build: clang 14 writes DWARF 5 forms that Debian 12's
  # valgrind (3.19) cannot read ("unhandled dwarf2 abbrev form"), and it
  # gives up before running anything. gcc's build runs it.
  if(LEASH_VALGRIND AND TARGET example_queryall_buffered AND TARGET example_demo
     AND LEASH_SANITIZE STREQUAL "" AND NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    add_test(NAME test_valgrind
      COMMAND sh "${_dbg}/valgrind.sh" "${LEASH_VALGRIND}"
              "${CMAKE_CURRENT_SOURCE_DIR}/tools/valgrind/leash.supp"
              "$<TARGET_FILE:example_queryall_buffered>"
              "$<TARGET_FILE:example_demo>")
    set_tests_properties(test_valgrind PROPERTIES TIMEOUT 300 LABELS unit)
  endif()

  find_program(LEASH_PYTHON3 python3)
  if(LEASH_GROFF AND LEASH_PYTHON3 AND TARGET leash_cli AND
     (_leash_man1 OR _leash_man3))
    add_test(NAME test_man
      COMMAND sh "${_dbg}/man.sh" "${LEASH_GROFF}" "$<TARGET_FILE:leash_cli>"
              ${_leash_man1} ${_leash_man3})
    set_tests_properties(test_man PROPERTIES TIMEOUT 60 LABELS unit)
  endif()

  if(LEASH_PYTHON3 AND TARGET example_demo AND
     EXISTS "${CMAKE_CURRENT_SOURCE_DIR}/scripts/update-doc-samples.sh")
    add_test(NAME test_doc_samples
      COMMAND sh "${CMAKE_CURRENT_SOURCE_DIR}/scripts/update-doc-samples.sh"
              --check "${CMAKE_CURRENT_BINARY_DIR}"
      WORKING_DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}")
    set_tests_properties(test_doc_samples PROPERTIES TIMEOUT 120 LABELS unit)
  endif()
endif()
