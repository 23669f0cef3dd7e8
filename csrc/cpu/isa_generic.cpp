// The CPU kernels compiled for the "generic" instruction set (flags set per file in CMakeLists.txt).
#define EDGEFER_ISA_NS isa_generic
#define EDGEFER_ISA_NAME "generic"
#define EDGEFER_TABLE_FN generic_kernels
#define EDGEFER_VW 4
#define EDGEFER_MR 4
#define EDGEFER_NV 2
#include "kernels_impl.inc"
