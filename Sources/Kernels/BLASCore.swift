// Which OpenBLAS kernels run our sgemm calls (prompt processing), for the bench and server logs.
// OpenBLAS picks its core type when it loads (OPENBLAS_CORETYPE overrides it; some environments pin
// it to Haswell because older builds misbehave on newer CPUs), so the figure is worth printing.
import COpenBLAS

public enum BLASCore {
    /// OpenBLAS's kernel family in this process, e.g. "Haswell" or "Cooperlake".
    public static var name: String { String(cString: openblas_get_corename()) }
}
