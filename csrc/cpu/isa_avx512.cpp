// The CPU kernels compiled for the "avx512" instruction set (flags set per file in CMakeLists.txt).
#define EDGEFER_ISA_NS isa_avx512
#define EDGEFER_ISA_NAME "avx512"
#define EDGEFER_TABLE_FN avx512_kernels
#define EDGEFER_VW 16
#define EDGEFER_MR 8
#define EDGEFER_NV 2
#include "kernels_impl.inc"
