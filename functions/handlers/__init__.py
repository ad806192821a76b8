"""One module per Lambda function. Each is thin: parse, call the domain, shape the response."""
