-- The guide's `GRANT qliksenserepository TO postgres`, for the superuser qrd connects as.
GRANT :"role" TO :"member";
