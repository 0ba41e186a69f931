"""What sends are made of (an app's templates and channels), cached in each gateway
process and kept coherent across processes by ``clarion.authoring.changes``."""
