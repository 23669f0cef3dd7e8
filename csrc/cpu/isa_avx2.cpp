// The CPU kernels compiled for the "avx2" instruction set (flags set per file in CMakeLists.txt).
#define EDGEFER_ISA_NS isa_avx2
#define EDGEFER_ISA_NAME "avx2"
#define EDGEFER_TABLE_FN avx2_kernels
#define EDGEFER_VW 8
#define EDGEFER_MR 6
#define EDGEFER_NV 2
#include "kernels_impl.inc"
