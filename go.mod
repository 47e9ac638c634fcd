module github.com/tfcat/tfcat

go 1.26.8

require (
	github.com/wamuir/graft v0.10.0
	google.golang.org/protobuf v1.34.2
)
