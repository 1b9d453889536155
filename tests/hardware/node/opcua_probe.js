// An independent OPC UA client (node-opcua) for the simulated PLCs: connect, browse, read.
// Reads one JSON request on stdin, prints one JSON line on stdout:
//   {endpoint, namespaceUri, line, securityPolicy: "None"|"Basic256Sha256",
//    securityMode: "None"|"Sign"|"SignAndEncrypt", certificate?, privateKey?, applicationUri?, user?, password?}
//   -> {namespaceIndex, stations: {name: {variables: {name: {value, status, sourceTimestamp}}, methods: [...]}}}
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
const {
  OPCUAClient,
  MessageSecurityMode,
  SecurityPolicy,
  AttributeIds,
  UserTokenType,
  NodeClass,
} = require("node-opcua-client");
const { OPCUACertificateManager } = require("node-opcua-certificate-manager");

async function main() {
  const request = JSON.parse(fs.readFileSync(0, "utf8"));
  const pkiRoot = fs.mkdtempSync(path.join(os.tmpdir(), "fabbrica-node-pki-"));
  const certificateManager = new OPCUACertificateManager({
    rootFolder: pkiRoot,
    automaticallyAcceptUnknownCertificate: true,
  });
  await certificateManager.initialize();
  const options = {
    applicationName: "fabbrica node-opcua probe",
    applicationUri: request.applicationUri || "urn:fabbrica:node-opcua-probe",
    securityMode: MessageSecurityMode[request.securityMode || "None"],
    securityPolicy: SecurityPolicy[request.securityPolicy || "None"],
    endpointMustExist: false,
    clientCertificateManager: certificateManager,
    connectionStrategy: { maxRetry: 1, initialDelay: 200, maxDelay: 1000 },
    requestedSessionTimeout: 20000,
  };
  if (request.certificate) {
    options.certificateFile = request.certificate;
    options.privateKeyFile = request.privateKey;
  }
  const client = OPCUAClient.create(options);
  try {
    await client.connect(request.endpoint);
    const identity = request.user
      ? { type: UserTokenType.UserName, userName: request.user, password: request.password }
      : { type: UserTokenType.Anonymous };
    const session = await client.createSession(identity);
    try {
      const namespaces = await session.readNamespaceArray();
      const ns = namespaces.indexOf(request.namespaceUri);
      if (ns < 0) throw new Error(`namespace ${request.namespaceUri} not on the server: ${namespaces}`);
      const objects = await session.browse("ns=0;i=85");
      const lineRef = objects.references.find(
        (ref) => ref.browseName.name === request.line && ref.browseName.namespaceIndex === ns
      );
      if (!lineRef) throw new Error(`no object ${request.line} under Objects`);
      const result = { namespaceIndex: ns, securityMode: request.securityMode || "None", stations: {} };
      const children = await session.browse(lineRef.nodeId);
      for (const ref of children.references) {
        if (ref.nodeClass !== NodeClass.Object) continue;
        const members = (await session.browse(ref.nodeId)).references;
        const variables = members.filter((member) => member.nodeClass === NodeClass.Variable);
        const methods = members.filter((member) => member.nodeClass === NodeClass.Method);
        const values = await session.read(
          variables.map((variable) => ({ nodeId: variable.nodeId, attributeId: AttributeIds.Value }))
        );
        const station = { variables: {}, methods: methods.map((method) => method.browseName.name) };
        variables.forEach((variable, index) => {
          const dataValue = values[index];
          const value = dataValue.value.value;
          station.variables[variable.browseName.name] = {
            nodeId: variable.nodeId.toString(),
            value: typeof value === "bigint" ? Number(value) : value,
            status: dataValue.statusCode.name,
            sourceTimestamp: dataValue.sourceTimestamp ? dataValue.sourceTimestamp.toISOString() : null,
          };
        });
        result.stations[ref.browseName.name] = station;
      }
      console.log(JSON.stringify(result));
    } finally {
      await session.close();
    }
  } finally {
    await client.disconnect();
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.log(JSON.stringify({ error: String((error && error.message) || error) }));
    process.exit(1);
  }
);
