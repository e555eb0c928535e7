package hwinfo

// CollectFS is Collect on a file system, for tests that inject faults.
var CollectFS = collect
