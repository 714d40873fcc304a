//go:build race

package schemas

// raceEnabled is true when the tests run with -race (which turns on
// checkptr: parquet-go's unsafe slicing of a corrupt file then aborts the
// process instead of panicking).
const raceEnabled = true
