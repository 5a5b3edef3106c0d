package dev.eventconfig.example;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * {@code java -jar eventconfig-example.jar COMMAND [OPTIONS]}: a Java reader and request-topic
 * client of eventconfig, written from docs/design.md alone. Every command prints JSON on stdout
 * (one document, or one line per record); errors are one {@code error:} line on stderr.
 * Exit codes: 0 done, 1 failed (an error answer, a timeout, Kafka), 2 bad usage.
 */
public final class Main {
    static final String USAGE = """
            usage: java -jar eventconfig-example.jar COMMAND [OPTIONS]
              state    [--min-version N] [--versions]       the log materialized: {"version", "config": {ws: {type: {key: value}}}}
              pokes    [--from-beginning] [--count N]       each poke of the notify topic, one JSON line each
              history                                       each Mutation of the history topic, one JSON line each
              put      -w WS -t TYPE -k KEY -v VALUE [--actor A] [--if-version N] [--reply-partition P]
              get      -w WS -t TYPE -k KEY [--min-version N] [--actor A] [--reply-partition P]
            options of every command:
              --bootstrap-servers HOST:PORT (required)  --topic-prefix P (eventconfig)
              --schemas DIR (the repository's schemas/, as built)  --timeout-ms T (30000)
            """;

    private Main() {
    }

    public static void main(String[] argv) {
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        int code;
        try {
            code = run(argv, out);
        } catch (UsageException e) {
            System.err.println("error: " + e.getMessage() + " (see `help`)");
            code = 2;
        } catch (Exception e) {
            System.err.println("error: " + e.getMessage());
            code = 1;
        }
        out.flush();
        System.exit(code);
    }

    private static int run(String[] argv, PrintStream out) throws Exception {
        if (argv.length == 0 || List.of("help", "-h", "--help").contains(argv[0])) {
            out.print(USAGE);
            return 0;
        }
        Options options = Options.parse(argv, 1);
        Deployment deployment = new Deployment(options.required("bootstrap-servers"),
                options.get("topic-prefix", "eventconfig"));
        String schemas = options.get("schemas", null);
        Wire wire = Wire.load(schemas != null ? Path.of(schemas) : Wire.defaultSchemasDir());
        long timeoutMs = options.number("timeout-ms", 30_000);
        Readers readers = new Readers(deployment, wire, out, timeoutMs);
        Requests requests = new Requests(deployment, wire, out, timeoutMs,
                options.number("reply-partition", -1));
        return switch (argv[0]) {
            case "state" -> readers.state(options.number("min-version", 0), options.flag("versions"));
            case "pokes" -> readers.pokes(options.flag("from-beginning"), options.number("count", -1));
            case "history" -> readers.history();
            case "put" -> requests.put(options.required("w"), options.required("t"), options.required("k"),
                    options.required("v"), options.get("actor", null), options.number("if-version", -1));
            case "get" -> requests.get(options.required("w"), options.required("t"), options.required("k"),
                    options.number("min-version", -1), options.get("actor", null));
            default -> throw new UsageException("unknown command " + argv[0]);
        };
    }

    /** Bad command-line usage: exit code 2. */
    static final class UsageException extends Exception {
        private static final long serialVersionUID = 1L;

        UsageException(String message) {
            super(message);
        }
    }

    /** {@code --name value} pairs and the flags {@code --versions}, {@code --from-beginning}. */
    record Options(Map<String, String> values, Set<String> flags) {
        private static final Set<String> FLAGS = Set.of("versions", "from-beginning");

        static Options parse(String[] argv, int from) throws UsageException {
            Map<String, String> values = new HashMap<>();
            Set<String> flags = new HashSet<>();
            for (int i = from; i < argv.length; i++) {
                if (!argv[i].startsWith("-")) {
                    throw new UsageException("unexpected argument " + argv[i]);
                }
                String name = argv[i].replaceFirst("^--?", "");
                if (FLAGS.contains(name)) {
                    flags.add(name);
                } else if (i + 1 < argv.length) {
                    values.put(name, argv[++i]);
                } else {
                    throw new UsageException("option " + argv[i] + " needs a value");
                }
            }
            return new Options(values, flags);
        }

        String get(String name, String otherwise) {
            return values.getOrDefault(name, otherwise);
        }

        String required(String name) throws UsageException {
            String value = values.get(name);
            if (value == null) {
                throw new UsageException("option " + (name.length() == 1 ? "-" : "--") + name + " is required");
            }
            return value;
        }

        long number(String name, long otherwise) throws UsageException {
            String value = values.get(name);
            if (value == null) {
                return otherwise;
            }
            if (!value.matches("[0-9]{1,18}")) {
                throw new UsageException("option --" + name + " needs a whole number, not " + value);
            }
            return Long.parseLong(value);
        }

        boolean flag(String name) {
            return flags.contains(name);
        }
    }
}
