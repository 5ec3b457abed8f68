#if canImport(Glibc)
import Glibc
#endif

extension MerkleTreeIndex {
    /// The file name of a `FileLog`'s tree index inside its data directory.
    public static let fileName = "merkle.tree"

    /// The tree index of the `FileLog` at `directory`: its `merkle.tree`, created when missing.
    /// A directory that cannot be written (a read-only copy) uses an existing file as it is,
    /// or, without one, builds the tree in memory for this process (a full read of the log).
    public static func open(directory: String) async throws -> MerkleTreeIndex {
        let path = directory.hasSuffix("/") ? directory + fileName : directory + "/" + fileName
        let storage: any MerkleNodeStorage
        if access(directory, W_OK) == 0 {
            storage = try FileMerkleNodes(path: path, writable: true, chunkLevel: chunkLevel)
        } else if Directory.exists(path) {
            storage = try FileMerkleNodes(path: path, writable: false, chunkLevel: chunkLevel)
        } else {
            storage = MemoryMerkleNodes()
        }
        return try await MerkleTreeIndex(storage: storage)
    }

    /// The tree index of an open store: a `FileLog`'s file or a `PostgresLog`'s table.
    /// What it stored is checked against the store's head first (`reconcile`).
    public static func open(for store: any EventStore) async throws -> MerkleTreeIndex {
        let index: MerkleTreeIndex
        if let file = store as? FileLog {
            index = try await open(directory: file.directory)
        } else if let postgres = store as? PostgresLog {
            index = try await MerkleTreeIndex(storage: postgres.merkleNodes())
        } else {
            index = try await MerkleTreeIndex(storage: MemoryMerkleNodes())
        }
        try await index.reconcile(store, head: try await store.head().position)
        return index
    }
}
