# Writes OUT, a C file holding the files FILES ('|'-separated names) of directory BASE
# as byte arrays, listed in ts_ui_assets[] (server/ui_assets.h). Run by the build
# (cmake -P) whenever a file of web/ changes, so tsdbd serves its UI from the binary.
string(REPLACE "|" ";" files "${FILES}")
file(WRITE ${OUT} "/* Generated from web/ by cmake/embed.cmake: do not edit. */\n"
     "#include <stddef.h>\n\n#include \"server/ui_assets.h\"\n\n")
set(entries "")
foreach(f ${files})
  file(READ ${BASE}/${f} hex HEX)
  string(LENGTH "${hex}" n)
  math(EXPR n "${n} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," arr "${hex}")
  string(MAKE_C_IDENTIFIER "${f}" id)
  file(APPEND ${OUT} "static const unsigned char a_${id}[] = { ${arr} };\n")
  string(APPEND entries "\t{ \"${f}\", a_${id}, ${n} },\n")
endforeach()
file(APPEND ${OUT} "\nconst struct ts_ui_asset ts_ui_assets[] = {\n${entries}\t{ NULL, NULL, 0 },\n};\n")
