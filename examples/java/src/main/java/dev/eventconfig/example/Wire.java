package dev.eventconfig.example;

import java.io.ByteArrayInputStream;
import java.io.File;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import org.apache.avro.Schema;
import org.apache.avro.AvroRuntimeException;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.generic.GenericRecordBuilder;
import org.apache.avro.message.BinaryMessageDecoder;
import org.apache.avro.message.BinaryMessageEncoder;
import org.apache.avro.message.SchemaStore;

/**
 * The wire encoding of docs/design.md §4.1: Avro single-object encoding ({@code C3 01}, the 8-byte
 * little-endian CRC-64-AVRO fingerprint of the writer schema, the binary body), read and written
 * with Avro's own {@link BinaryMessageDecoder} and {@link BinaryMessageEncoder}.
 *
 * <p>Every {@code .avsc} of the schemas folder and of its {@code compat/} subfolder (§4.5) goes into
 * one {@link SchemaStore}, so a record written with any shipped generation is found by its
 * fingerprint and resolved against the current schema of the record the reader expects.
 */
final class Wire {
    /** Why a value did not decode: the kinds of §4.1. */
    enum Problem { BadMarker, UnknownFingerprint, CorruptBody, CodecError }

    /** A value that is not a record of the expected type, with the §4.1 kind. */
    static final class DecodeException extends Exception {
        private static final long serialVersionUID = 1L;
        final Problem problem;

        DecodeException(Problem problem, String message) {
            super(problem + ": " + message);
            this.problem = problem;
        }
    }

    private final Map<String, Schema> current = new HashMap<>();
    private final SchemaStore.Cache store = new SchemaStore.Cache();
    private final Map<String, BinaryMessageDecoder<GenericRecord>> decoders = new HashMap<>();

    private Wire() {
    }

    /** The schemas of {@code dir} (the repository's {@code schemas/}) and {@code dir/compat}. */
    static Wire load(Path dir) throws IOException {
        Wire wire = new Wire();
        for (Schema schema : parseAll(avscFiles(dir), Map.of())) {
            wire.current.put(schema.getName(), schema);
            wire.store.addSchema(schema);
        }
        if (wire.current.isEmpty()) {
            throw new IOException("no .avsc schema in " + dir);
        }
        Path compat = dir.resolve("compat");
        if (Files.isDirectory(compat)) {
            for (Schema schema : parseAll(avscFiles(compat), wire.current)) {
                wire.store.addSchema(schema);
            }
        }
        return wire;
    }

    private static List<Path> avscFiles(Path dir) throws IOException {
        try (Stream<Path> files = Files.list(dir)) {
            return files.filter(p -> p.toString().endsWith(".avsc")).sorted().toList();
        }
    }

    /**
     * Parses files in any order: a self-contained file (the generations in compat/ define their
     * nested records inline) with a parser of its own; one that names records of other files
     * (ConfigRequest names ConfigKey...) with a parser that knows the records parsed so far and
     * {@code known}, except the record the file itself defines ({@code Record[.generation].avsc}).
     */
    private static List<Schema> parseAll(List<Path> files, Map<String, Schema> known) throws IOException {
        List<Schema> parsed = new ArrayList<>();
        List<Path> pending = new ArrayList<>(files);
        while (!pending.isEmpty()) {
            List<Path> failed = new ArrayList<>();
            AvroRuntimeException last = null;  // SchemaParseException, or "Undefined schema" for a name not known yet
            for (Path file : pending) {
                String own = file.getFileName().toString().split("\\.")[0];
                List<Schema> types = new ArrayList<>(parsed);
                known.values().stream().filter(s -> !s.getName().equals(own)).forEach(types::add);
                try {
                    parsed.add(new Schema.Parser().parse(file.toFile()));
                } catch (AvroRuntimeException standalone) {
                    try {
                        parsed.add(new Schema.Parser().addTypes(types).parse(file.toFile()));
                    } catch (AvroRuntimeException e) {
                        failed.add(file);
                        last = e;
                    }
                }
            }
            if (failed.size() == pending.size()) {
                throw new IOException("cannot parse " + failed.get(0) + ": " + last.getMessage());
            }
            pending = failed;
        }
        return parsed;
    }

    /** The current schema of a record, by its name ({@code ConfigRequest}). */
    Schema schema(String record) {
        Schema schema = current.get(record);
        if (schema == null) {
            throw new IllegalArgumentException("no schema of record " + record);
        }
        return schema;
    }

    /** A record of the current schema to fill in; fields left unset take their schema defaults. */
    GenericRecordBuilder builder(String record) {
        return new GenericRecordBuilder(schema(record));
    }

    byte[] encode(GenericRecord record) throws IOException {
        ByteBuffer buffer = new BinaryMessageEncoder<GenericRecord>(GenericData.get(), record.getSchema())
                .encode(record);
        byte[] bytes = new byte[buffer.remaining()];
        buffer.get(bytes);
        return bytes;
    }

    /** Decodes {@code bytes} as the record named {@code record}, with the errors of §4.1. */
    GenericRecord decode(String record, byte[] bytes) throws DecodeException {
        if (bytes == null) {
            throw new DecodeException(Problem.CodecError, "no value");
        }
        if (bytes.length < 10 || (bytes[0] & 0xff) != 0xC3 || bytes[1] != 0x01) {
            throw new DecodeException(Problem.BadMarker, "not single-object encoded");
        }
        long fingerprint = ByteBuffer.wrap(bytes, 2, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        Schema writer = store.findByFingerprint(fingerprint);
        if (writer == null) {
            throw new DecodeException(Problem.UnknownFingerprint, "unknown writer schema fingerprint");
        }
        Schema reader = schema(record);
        if (!writer.getFullName().equals(reader.getFullName())) {
            throw new DecodeException(Problem.CodecError, "a " + writer.getName() + " where a " + record + " belongs");
        }
        BinaryMessageDecoder<GenericRecord> decoder = decoders.computeIfAbsent(
                record, name -> new BinaryMessageDecoder<>(GenericData.get(), reader, store));
        ByteArrayInputStream in = new ByteArrayInputStream(bytes);
        GenericRecord datum;
        try {
            datum = decoder.decode(in, null);
        } catch (IOException | RuntimeException e) {
            throw new DecodeException(Problem.CorruptBody, String.valueOf(e.getMessage()));
        }
        if (in.available() != 0) {  // the decoder reads the stream directly: nothing is read ahead
            throw new DecodeException(Problem.CorruptBody, in.available() + " trailing bytes");
        }
        return datum;
    }

    /** The schemas folder written into the jar at build time (example.properties). */
    static Path defaultSchemasDir() throws IOException {
        java.util.Properties properties = new java.util.Properties();
        try (var in = Wire.class.getResourceAsStream("/example.properties")) {
            if (in == null) {
                throw new IOException("example.properties is missing from the jar");
            }
            properties.load(in);
        }
        return new File(properties.getProperty("schemas.dir")).toPath().normalize();
    }
}
