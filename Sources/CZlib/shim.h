// CZlib from Debian's -dev package (parquet page decompression).
#pragma once
#include <zlib.h>
